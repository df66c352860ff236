"""Call records: the typed event stream, summaries, outcomes, queries and KPIs."""
