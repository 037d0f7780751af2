"""Classification: the six labels and the Classifier interface (`types`), text preparation,
the trained model in its compact numpy form and its files (`files`, `store`), the safety
net's safeguarding rules, training and evaluation. It imports nothing else of Candour's:
its settings are its own (`config.ClassifierConfig`), and the daemon's CLI and preparer
use it from above."""
