#!/usr/bin/env bash
# Build the test images ONCE per recipe hash on this machine's Docker engine, with the images
# role itself (tests/harness/build-test-images.yml), and save each as a tarball in the harness
# cache ($MLW_IMAGE_CACHE, default /var/cache/ml-workshop-test/images): the scenarios load them
# into their instances instead of building. The recipe is the images_* block of
# .config/molecule/config.yml (tests/harness/image_recipe.py reads it).
# Needs: the venv active, MLW_PLATFORM_IMAGE (scripts/build-platform-image.sh's tag).
# Prints the manifest path on success.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
export MLW_REPO=$repo
export MLW_IMAGE_CACHE=${MLW_IMAGE_CACHE:-/var/cache/ml-workshop-test/images}
: "${MLW_PLATFORM_IMAGE:?set MLW_PLATFORM_IMAGE (scripts/build-platform-image.sh prints it)}"
export MLW_EXTRA_CA_DIR=${MLW_EXTRA_CA_DIR:-/usr/local/share/ca-certificates}
mkdir -p "$MLW_IMAGE_CACHE"
vars=$(mktemp /tmp/mlw-test-image-vars.XXXXXX.json)
trap 'rm -f "$vars"' EXIT
python "$repo/tests/harness/image_recipe.py" >"$vars"
ANSIBLE_CONFIG=$repo/ansible.cfg ANSIBLE_ROLES_PATH=$repo/roles \
  ansible-playbook -i localhost, -e "ansible_python_interpreter=$(command -v python)" -e "@$vars" \
  "$repo/tests/harness/build-test-images.yml" >&2
echo "$MLW_IMAGE_CACHE/manifest.json"
