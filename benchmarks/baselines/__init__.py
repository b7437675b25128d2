"""What a user would otherwise write, served and run the same way as ours, for comparison."""
