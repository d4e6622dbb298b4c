"""The model engine: the policy (model, tokenizer, log-probabilities), generation behind one
interface, checkpoints, and the tiny random model for tests. Distributed training and inference
engines go here."""
