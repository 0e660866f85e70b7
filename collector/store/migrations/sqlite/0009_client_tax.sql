-- Issue 19: a client's own tax rate (percent, exact decimal text; NULL: the default rate in the billing
-- settings) or an exemption, whose reason the invoice prints ("Reverse charge", "Charity, exempt").
CREATE TABLE client_tax (
    client_id INTEGER PRIMARY KEY REFERENCES clients (id),
    tax_rate TEXT,
    exemption TEXT NOT NULL DEFAULT ''
) STRICT;
