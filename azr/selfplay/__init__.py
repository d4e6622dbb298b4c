"""Self-play: one step of Absolute Zero and its stages (AZR paper, Algorithm 1). Read `step.py`
first; the stages are named by their verb (`propose`, `solve`, `update`), and the math (`reward`,
`advantages`, `loss`) is pure functions of numbers and tensors."""
