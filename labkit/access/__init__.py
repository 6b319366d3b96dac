"""Users, visibility and permissions: the one place the library decides who may do what.

``policy`` holds the rules (and the SQL clauses listing queries filter with); ``users`` the users,
moderators and API tokens. See docs/permissions.md.
"""
from .policy import (Viewer, can_read_version, check_visibility, entity_not_found, entity_readable,
                     experiment_readable, is_editor, latest_readable, readable_entity, readable_run,
                     readable_versions, require_editor, require_may_cancel, require_may_set_visibility,
                     require_owner, run_not_found, run_readable, run_visibility, version_moderated_or_own, version_readable,
                     viewer)
from .users import (PUBLIC_VISITOR, TOKEN_PREFIX, InvalidToken, check_user_name, create_token, existing_user, get_or_create_user,
                    hash_token, revoke_tokens, user_for_token)

__all__ = ["InvalidToken", "PUBLIC_VISITOR", "TOKEN_PREFIX", "Viewer", "can_read_version", "check_user_name", "check_visibility",
           "create_token", "entity_not_found", "entity_readable", "existing_user", "experiment_readable",
           "get_or_create_user", "hash_token", "is_editor", "latest_readable", "readable_entity", "readable_run",
           "readable_versions", "require_editor", "require_may_cancel", "require_may_set_visibility",
           "require_owner", "revoke_tokens", "run_not_found", "run_readable", "run_visibility",
           "user_for_token", "version_moderated_or_own", "version_readable", "viewer"]
