"""What can be wrong with a department's export, by who must act: the sender (rejected) or the operator (stop)."""

from __future__ import annotations

from foundation.errors import ConfigurationError, InputRejected


class ExportRejected(InputRejected):
    """An export file or pull that cannot be taken as a whole: no such file, an unknown format, no header,
    a required column missing, a file that breaks off. The department resends it fixed; retrying is useless."""

    reason_code = "export_rejected"


class MappingsError(ConfigurationError):
    """The export mappings or REST sources file is wrong: nothing can be read with it until it is fixed."""
