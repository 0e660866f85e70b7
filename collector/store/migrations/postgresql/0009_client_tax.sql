-- Issue 19: a client's own tax rate (percent; NULL: the default rate in the billing settings) or an
-- exemption, whose reason the invoice prints ("Reverse charge", "Charity, exempt").
CREATE TABLE client_tax (
    client_id BIGINT PRIMARY KEY REFERENCES clients (id),
    tax_rate NUMERIC,
    exemption TEXT NOT NULL DEFAULT ''
);
