"""What the boto3 contenders share: the question wrapper and the simulator's client settings."""

HTML_QUESTION = (
    '<HTMLQuestion xmlns="http://mechanicalturk.amazonaws.com/AWSMechanicalTurkDataSchemas/'
    '2011-11-11/HTMLQuestion.xsd"><HTMLContent><![CDATA[{}]]></HTMLContent>'
    "<FrameHeight>0</FrameHeight></HTMLQuestion>"
)

# The simulator's default key pair (turkform_sim::DEFAULT_ACCESS_KEY_ID / _SECRET_ACCESS_KEY).
SIM_ACCESS_KEY_ID = "AKIASIMULATOR"
SIM_SECRET_ACCESS_KEY = "simulator-secret"


def client_kwargs(endpoint):
    return {
        "endpoint_url": endpoint,
        "region_name": "us-east-1",
        "aws_access_key_id": SIM_ACCESS_KEY_ID,
        "aws_secret_access_key": SIM_SECRET_ACCESS_KEY,
    }
