"""The write path for metastores and catalogs: plain functions that check rules, write, audit."""
