from setuptools import find_packages, setup

# kernels/ and export/ are top-level folders but install as hida_rt.kernels and
# hida_rt.export, so nothing claims the generic top-level names.
PACKAGE_DIRS = {"hida_rt": "hida_rt", "hida_rt.kernels": "kernels", "hida_rt.export": "export"}
packages = []
for pkg, folder in PACKAGE_DIRS.items():
    packages.append(pkg)
    packages += [f"{pkg}.{sub}" for sub in find_packages(folder)]

setup(
    name="hida_rt",
    version="0.1.0",
    description="Optimized inference runtime for HIDA, the ICCV 2023 facial-sketch GAN",
    python_requires=">=3.10",
    packages=packages,
    package_dir=PACKAGE_DIRS,
    # torch: a range, so the locally installed CPU build (2.13.0) satisfies it and no
    # CUDA wheels are pulled; install it first as the README says.
    install_requires=[
        "torch>=2.4",
        "numpy",
        "pillow",
        "tqdm",
        "onnx>=1.16",
        "onnxruntime>=1.31",
    ],
    extras_require={
        "test": ["pytest", "pytest-benchmark", "triton>=3.2", "onnx-graphsurgeon>=0.5"],
        "gpu": ["triton>=3.2", "cuda-python"],
        "tensorrt": ["tensorrt>=10.9", "onnx-graphsurgeon>=0.5", "triton>=3.2"],  # aot_impl compiles with Triton
        # The face front end also needs `pip install --no-deps mediapipe==0.10.21` (the last
        # release that bundles its models; its declared deps would pull jax and a second
        # OpenCV). protobuf: onnx needs >= 6.31, MediaPipe breaks on 7.
        "face": ["absl-py", "attrs", "flatbuffers", "protobuf>=6.31.1,<7", "opencv-python-headless<5", "matplotlib"],
        "video": ["av==18.1.0"],
    },
)
