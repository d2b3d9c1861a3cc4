"""Reference data: countries, languages, member States, offices, coded lists."""
