#!/bin/bash
# The do-it-yourself alternative that `make bench` compares pam_k8stoken with: a pam_exec
# checker that sends the same TokenReview with curl and judges the reply with jq.
#
#   auth required pam_exec.so expose_authtok quiet /abs/tokenreview-curl.sh CA HEADER URL AUDIENCE
#
# pam_exec writes the token and a NUL byte to stdin (cut at 512 bytes: PAM_MAX_RESP_SIZE).
# HEADER is a private file holding "Authorization: Bearer <reviewer token>", read by
# curl's -H @file so that no credential is on a command line. Exit 0 only when the API
# server answered status.authenticated == true.
set -o pipefail
PATH=/usr/bin:/bin
ca=$1 header=$2 url=$3 audience=$4

tr -d '\000' |
	jq -Rsc --arg aud "$audience" \
		'{apiVersion: "authentication.k8s.io/v1", kind: "TokenReview",
		  spec: {token: ., audiences: [$aud]}}' |
	curl -sS --fail --max-time 5 --cacert "$ca" -H @"$header" \
		-H 'Content-Type: application/json' --data-binary @- \
		"$url/apis/authentication.k8s.io/v1/tokenreviews" |
	jq -e '.status.authenticated == true' >/dev/null
