-- An event's message on a channel is one message, whoever it ends up going to: a retry that
-- finds another recipient (the traveller changed their phone number meanwhile) updates the row
-- of a message not sent yet, and never sends one already sent, skipped or refused a second time.
ALTER TABLE deliveries DROP CONSTRAINT deliveries_event_id_channel_recipient_key;
ALTER TABLE deliveries ADD CONSTRAINT deliveries_event_id_channel_key UNIQUE (event_id, channel);
