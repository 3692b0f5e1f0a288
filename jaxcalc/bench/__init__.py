"""Benchmarks: what they share (`harness`: config, rows, the job, interleaved timing, memory,
the machine), one training job timed several ways (`training`), its data-parallel scaling
(`scaling`), the machine's matmul peak and the job's FLOPs (`hardware`), the NumPy and
PyTorch peers (`peers`), what a gradient costs by finite differences against reverse mode
(`gradient_cost`), and every text table (`report`).
"""
