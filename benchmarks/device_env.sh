# Sourced by the GPU machine's scripts (gpu_check.sh, gpu_seeds.sh) from the repository root, with
# PY set: names the GPU, installs the carried wheels (.whl/, see those scripts) into /tmp/site, puts
# the checkout on PYTHONPATH and prints the versions that matter.
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
if compgen -G ".whl/*.whl" >/dev/null; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site
fi
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
"$PY" - <<'EOF'
import platform, numpy, torch
try:
    import triton
    tri = triton.__version__
except ImportError:
    tri = "absent"
gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else "no CUDA device"
print(f"python {platform.python_version()}, torch {torch.__version__}, triton {tri}, "
      f"numpy {numpy.__version__}, {gpu}")
EOF
