"""Privacy: analysis policies, SQL checking and rewriting, DP mechanisms, budgets.

The query path, for the coordinator::

    from entrepot.privacy import plan, parse_policy
    policy = parse_policy(yaml_text, standard)
    p = plan(sql, standard=standard, policy=policy, dataset="provider.dataset",
             epsilon=0.5, codes=codelist, version=version_hash)
    # reserve p.epsilon / p.delta in the ledger, then:
    answer = p.run(engine, view)          # Answer: to_arrow(), to_pandas(), to_json()
"""

from typing import TYPE_CHECKING

from entrepot._lazy import lazy

if TYPE_CHECKING:
    from entrepot.privacy.answer import OTHER, Answer, Estimate, Row
    from entrepot.privacy.mechanisms import Gaussian, Laplace, Mechanism
    from entrepot.privacy.plan import Plan, dataset_of, plan, price
    from entrepot.privacy.policy import Policy, default_policy, parse_policy

__all__ = [
    "OTHER",
    "Answer",
    "Estimate",
    "Gaussian",
    "Laplace",
    "Mechanism",
    "Plan",
    "Policy",
    "Row",
    "dataset_of",
    "default_policy",
    "parse_policy",
    "plan",
    "price",
]

# The query path loads pandas, OpenDP and sqlglot: a policy or a budget read does not;
# a policy loads YAML and the standards' parser, which a budget read does without.
__getattr__ = lazy(
    __name__,
    {
        **dict.fromkeys(("Policy", "default_policy", "parse_policy"), "entrepot.privacy.policy"),
        **dict.fromkeys(("OTHER", "Answer", "Estimate", "Row"), "entrepot.privacy.answer"),
        **dict.fromkeys(("Gaussian", "Laplace", "Mechanism"), "entrepot.privacy.mechanisms"),
        **dict.fromkeys(("Plan", "dataset_of", "plan", "price"), "entrepot.privacy.plan"),
    },
)
