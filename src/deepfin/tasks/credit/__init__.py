"""Credit risk: the loan-default scorer, its evaluation and its run files."""
