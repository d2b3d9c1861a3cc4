"""Import every domain's models so the metadata is complete (Alembic, create_all)."""
from rso.audit import models as audit_models  # noqa: F401
from rso.jobs import models as job_models  # noqa: F401
from rso.profiling import models as profiling_models  # noqa: F401
from rso.reference import models as reference_models  # noqa: F401
from rso.registration import models as registration_models  # noqa: F401
from rso.reporting import models as reporting_models  # noqa: F401
from rso.resettlement import models as resettlement_models  # noqa: F401
from rso.returns import models as returns_models  # noqa: F401
from rso.rsd import models as rsd_models  # noqa: F401
from rso.users import models as user_models  # noqa: F401
from rso.vault import models as vault_models  # noqa: F401
from rso.workflow import models as workflow_models  # noqa: F401
