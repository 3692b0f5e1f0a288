"""Benchmarks: one training job timed several ways (`training`), the machine's matmul peak
and the job's FLOPs (`hardware`), the NumPy and PyTorch peers (`peers`), and what a
gradient costs by finite differences against reverse mode (`gradient_cost`).
"""
