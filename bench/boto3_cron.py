#!/usr/bin/env python3
"""The common cron idiom for a re-run: for every item the script has a HIT id for, GetHIT to see
whether it is still there, and create only the missing ones.

Usage: boto3_cron.py ENDPOINT RECORDS.json   (RECORDS: {"hits": {item: hit_id}} from a posting run)
"""
import json
import sys

import boto3
from botocore.config import Config


def main():
    endpoint, records_path = sys.argv[1:3]
    client = boto3.client(
        "mturk",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="AKIASIMULATOR",
        aws_secret_access_key="simulator-secret",
        config=Config(retries={"mode": "standard"}),
    )
    records = json.load(open(records_path))["hits"]
    missing = []
    for item, hit_id in records.items():
        try:
            client.get_hit(HITId=hit_id)
        except client.exceptions.RequestError:
            missing.append(item)
    print(json.dumps({"checked": len(records), "missing": len(missing)}))


if __name__ == "__main__":
    main()
