"""Dealer operations: the figures a dealer's customer-care and general managers work from
(complaint cases and their deadlines)."""
