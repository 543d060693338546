-- The services' databases (DESIGN §1), created when the postgres container first initialises.
-- `./ops/dev up` creates any that are missing as well; keep this list equal to ops/services.py.
CREATE DATABASE auth_service_db;
CREATE DATABASE tour_service_db;
CREATE DATABASE booking_service_db;
CREATE DATABASE payment_service_db;
CREATE DATABASE notification_service_db;
