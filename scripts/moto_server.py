"""moto_server with one fidelity fix, started by scripts/provision-tools.sh (pt_start_moto).

SQS returns a queue's RedrivePolicy attribute as compact JSON
({"deadLetterTargetArn":"...","maxReceiveCount":3}); moto 5.2 returns it with spaces
(json.dumps defaults). The aws provider 3.39 compares that string with the normalised
(compact) JSON of the configuration, so against unpatched moto every plan of a queue
with a dead-letter queue shows a "whitespace changes" update that AWS would not. This
makes moto answer as SQS does; nothing else is changed.
"""

import json
import sys

from moto.server import main
from moto.sqs import models

_attributes = models.Queue.attributes.fget


def _compact_redrive_attributes(self):
    result = _attributes(self)
    if self.redrive_policy and "RedrivePolicy" in result:
        result["RedrivePolicy"] = json.dumps(self.redrive_policy, separators=(",", ":"))
    return result


models.Queue.attributes = property(_compact_redrive_attributes)

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
