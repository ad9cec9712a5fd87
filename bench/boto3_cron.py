#!/usr/bin/env python3
"""A careful cron re-run: page through ListHITs (100 per page, as MTurk allows), match the HITs
to the items by RequesterAnnotation, and report which items have no HIT (those a script would
then create). No call per item.

Usage: boto3_cron.py ENDPOINT ITEMS.csv
"""
import csv
import json
import sys

import boto3
from botocore.config import Config

from common import client_kwargs


def main():
    endpoint, items_path = sys.argv[1:3]
    client = boto3.client("mturk", config=Config(retries={"mode": "standard"}), **client_kwargs(endpoint))
    with open(items_path, newline="", encoding="utf-8") as f:
        items = [row["id"] for row in csv.DictReader(f)]
    seen = set()
    kwargs = {"MaxResults": 100}
    while True:
        page = client.list_hits(**kwargs)
        for hit in page.get("HITs", []):
            seen.add(hit.get("RequesterAnnotation", ""))
        token = page.get("NextToken")
        if not token or not page.get("HITs"):
            break
        kwargs["NextToken"] = token
    missing = [i for i in items if i not in seen]
    print(json.dumps({"checked": len(items), "missing": len(missing)}))


if __name__ == "__main__":
    main()
