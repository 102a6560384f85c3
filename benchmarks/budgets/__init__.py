"""Provider budgets benchmark (issue 14): the limiter's cost per call and a rate-limited batch."""
