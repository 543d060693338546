"""notify: e-mail (SMTP) and SMS from the events of bookings, payments and seats, each sent once
per channel, with a delivery log that travellers and administrators read."""
