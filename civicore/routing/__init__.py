"""AI routing of citizens' reports: the models, their public cards, activation and every decision."""
