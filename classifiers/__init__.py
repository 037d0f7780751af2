"""Classification: labels, the classifier interface, the trained model and its safety rules."""
