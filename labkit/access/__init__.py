"""Users, accounts, visibility and permissions: the one place the library decides who may do what.

``policy`` holds the rules (and the SQL clauses listing queries filter with); ``users`` the users and
API tokens; ``accounts`` passwords, roles and sign-in sessions. See docs/permissions.md.
"""
from .accounts import (ADMIN, MODERATOR, PROTOCOL_AUTHOR, ROLES, SESSION_COOKIE, Account, SignInFailed,
                       check_password, check_role)
from .policy import (Viewer, can_read_version, check_visibility, entity_not_found, entity_readable,
                     experiment_readable, is_editor, latest_readable, readable_entity, readable_run,
                     readable_versions, require_editor, require_may_cancel, require_may_set_visibility,
                     require_owner, require_protocol_author, run_not_found, run_readable, run_visibility,
                     version_moderated_or_own, version_readable, viewer)
from .users import (PUBLIC_VISITOR, TOKEN_PREFIX, InvalidToken, TokenInfo, check_token_name, check_user_name,
                    create_token, existing_user, get_or_create_user, hash_token, revoke_token, revoke_tokens,
                    tokens, user_for_token)

__all__ = ["ADMIN", "Account", "InvalidToken", "MODERATOR", "PROTOCOL_AUTHOR", "PUBLIC_VISITOR", "ROLES",
           "SESSION_COOKIE", "SignInFailed", "TOKEN_PREFIX", "TokenInfo", "Viewer", "can_read_version",
           "check_password", "check_role", "check_token_name", "check_user_name", "check_visibility",
           "create_token", "entity_not_found", "entity_readable", "existing_user", "experiment_readable",
           "get_or_create_user", "hash_token", "is_editor", "latest_readable", "readable_entity", "readable_run",
           "readable_versions", "require_editor", "require_may_cancel", "require_may_set_visibility",
           "require_owner", "require_protocol_author", "revoke_token", "revoke_tokens", "run_not_found",
           "run_readable", "run_visibility", "tokens", "user_for_token", "version_moderated_or_own",
           "version_readable", "viewer"]
