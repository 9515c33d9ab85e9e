-- The guide's schema (powerdns-init.sql) is PowerDNS 4.3's; Debian 12
-- packages PowerDNS 4.7, whose domains table has two more columns.
ALTER TABLE domains MODIFY type VARCHAR(8) NOT NULL;
ALTER TABLE domains ADD COLUMN options VARCHAR(64000) DEFAULT NULL;
ALTER TABLE domains ADD COLUMN catalog VARCHAR(255) DEFAULT NULL;
CREATE INDEX catalog_idx ON domains(catalog);
