"""The record service: every read and write of entity records goes through here."""
