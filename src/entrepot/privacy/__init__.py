"""Privacy: analysis policies, SQL checking and rewriting, DP mechanisms, budgets."""
