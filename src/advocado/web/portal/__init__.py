"""Public pages for advocates (no login): the tokenised UGC challenge entry page and the
featured entries of a challenge."""
