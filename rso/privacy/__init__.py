"""Data-subject rights: access (an export bundle of one person's data) and erasure
(crypto-shredding). Both are acts of a named user with a stated purpose, and audited."""
