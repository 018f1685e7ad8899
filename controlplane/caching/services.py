"""The write path for Alluxio caches: plain functions that check rules, write, audit."""
