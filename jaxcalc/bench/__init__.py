"""Benchmarks: what they share (`harness`: config, rows, the job, interleaved timing,
memory), one training job timed several ways (`training`), its data-parallel scaling
(`scaling`), the machine's matmul peak and the job's FLOPs (`hardware`), the NumPy and
PyTorch peers (`peers`), what a gradient costs by finite differences against reverse mode
(`gradient_cost`), what a Hessian-vector product costs (`hvp`), kernels per step counted in
a compiled program (`kernels`), and every text table (`report`). What the numbers were
measured on: `jaxcalc.machine`.
"""
