#!/usr/bin/env python3
"""The fairest script a careful requester writes today: a 16-thread pool, botocore's adaptive
retry mode, a deterministic UniqueRequestToken per item (so a retried create after a lost
response is deduplicated by MTurk), and HitAlreadyExists treated as success (the HIT id is read
from the error message, which names it).

Usage: boto3_fair.py ENDPOINT ITEMS.csv TEMPLATE.html OUT.json
"""
import csv
import hashlib
import html
import json
import re
import sys
from concurrent.futures import ThreadPoolExecutor

import boto3
from botocore.config import Config

from common import HTML_QUESTION, client_kwargs

# "There is already a HIT which exists with the same UniqueRequestToken: <HIT id> (<ms>)"
HIT_ID = re.compile(r"UniqueRequestToken:\s*([0-9A-Za-z]+)")


def token(item_key):
    # At most 64 characters; stable across runs so that a re-run is deduplicated too.
    return hashlib.sha256(("batch/" + item_key).encode()).hexdigest()[:64]


def main():
    endpoint, items_path, template_path, out_path = sys.argv[1:5]
    client = boto3.client(
        "mturk",
        config=Config(retries={"mode": "adaptive", "max_attempts": 10}, max_pool_connections=16),
        **client_kwargs(endpoint),
    )
    template = open(template_path, encoding="utf-8").read()
    hit_type_id = client.create_hit_type(
        Title="Label a sentence (boto3 fair)",
        Description="Read one sentence and label it.",
        Keywords="text, labeling",
        Reward="0.10",
        AssignmentDurationInSeconds=600,
        AutoApprovalDelayInSeconds=259200,
    )["HITTypeId"]
    with open(items_path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))

    def create(row):
        question = HTML_QUESTION.format(template.replace("{{ item.text }}", html.escape(row["text"])))
        try:
            hit = client.create_hit_with_hit_type(
                HITTypeId=hit_type_id,
                MaxAssignments=3,
                LifetimeInSeconds=7 * 86400,
                Question=question,
                RequesterAnnotation=row["id"],
                UniqueRequestToken=token(row["id"]),
            )["HIT"]
            return row["id"], hit["HITId"]
        except client.exceptions.RequestError as e:
            message = e.response.get("Error", {}).get("Message", "")
            if e.response.get("TurkErrorCode", "").endswith("HitAlreadyExists") or "UniqueRequestToken" in message:
                found = HIT_ID.search(message)
                if found:
                    return row["id"], found.group(1)
                print(f"failed {row['id']}: HitAlreadyExists without a HIT id: {message}", file=sys.stderr)
                return row["id"], None
            print(f"failed {row['id']}: {e}", file=sys.stderr)
            return row["id"], None
        except Exception as e:
            print(f"failed {row['id']}: {e}", file=sys.stderr)
            return row["id"], None

    with ThreadPoolExecutor(max_workers=16) as pool:
        results = list(pool.map(create, rows))
    created = {k: v for k, v in results if v}
    json.dump({"hits": created, "failures": sum(1 for _, v in results if not v)}, open(out_path, "w"))


if __name__ == "__main__":
    main()
