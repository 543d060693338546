"""tourbook's web site: server-rendered pages for travellers and operators, a client of the API."""
