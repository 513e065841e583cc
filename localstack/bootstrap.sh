#!/usr/bin/env bash
# Deploys infra/template.yaml to LocalStack (Docker): builds the arm64 functions with cargo-lambda,
# then `sam deploy` through samlocal. Needs: cargo-lambda, aws-sam-cli-local (pip), Docker.
#
#   docker compose -f localstack/docker-compose.yml up -d
#   bash localstack/bootstrap.sh [stack-name]
#   AWS_ENDPOINT_URL=http://127.0.0.1:4566 ... (see the README for the tests)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
stack="${1:-deskshift}"
export AWS_ENDPOINT_URL="${AWS_ENDPOINT_URL:-http://127.0.0.1:4566}"
export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION="${AWS_REGION:-us-east-1}"
command -v cargo-lambda >/dev/null || { echo "install cargo-lambda first: cargo install cargo-lambda" >&2; exit 1; }
command -v samlocal >/dev/null || python3 -m pip install --quiet aws-sam-cli-local aws-sam-cli
cd "$root"
cargo run -q -p deskshift-statemachine >/dev/null
cargo lambda build --release --arm64 -p deskshift-functions
samlocal deploy --template-file infra/template.yaml --stack-name "$stack" \
    --resolve-s3 --capabilities CAPABILITY_IAM CAPABILITY_AUTO_EXPAND --no-confirm-changeset
aws cloudformation describe-stacks --stack-name "$stack" --query 'Stacks[0].Outputs' --output table
