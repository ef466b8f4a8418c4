"""The one mapping from our verbs to Flask-AppBuilder methods and permission names."""
from __future__ import annotations

# Flask-AppBuilder method name (screens and REST API alike) -> the verb that guards it.
METHOD_VERBS: dict[str, str] = {
    "list": "read", "show": "read", "download": "read", "file": "read",
    "get": "read", "get_list": "read", "info": "read",
    "add": "create", "post": "create",
    "edit": "update", "put": "update",
    "delete": "delete",
    "import_template": "import", "import_rows": "import", "import_errors": "import",
    "export_rows": "export",
}


def permission_name(verb: str) -> str:
    """Return the FAB permission name of a verb, e.g. read -> can_read."""
    return f"can_{verb}"


# How each verb reads to people (zh, en): the permission review, role and user pages say these.
VERB_LABELS: dict[str, tuple[str, str]] = {
    "read": ("查看", "read"), "create": ("新增", "create"), "update": ("修改", "update"), "delete": ("删除", "delete"),
    "export": ("导出", "export"), "import": ("导入", "import"), "report": ("报表", "report"),
    "reveal": ("查看明文", "reveal"), "everything": ("全部操作", "everything"), "menu_access": ("菜单", "menu"),
    "this_form_get": ("打开", "open"), "this_form_post": ("提交", "submit"), "userinfo": ("本人信息", "own profile"),
}
# Flask-AppBuilder's own screens a role may be given, as people call them.
SCREEN_LABELS: dict[str, tuple[str, str]] = {
    "ResetMyPasswordView": ("修改本人密码", "Change own password"), "UserDBModelView": ("用户", "Users"),
    "data": ("业务数据（菜单）", "Business data (menu)"), "Security": ("安全（菜单）", "Security (menu)"),
    "RoleModelView": ("角色", "Roles"), "AuditLog": ("审计日志", "Audit log"),
    "Imports": ("导入记录", "Imports"), "import_menu": ("导入记录（菜单）", "Imports (menu)"),
    "Jobs": ("后台任务", "Jobs"),
}


def verb_order(label_or_verb: str) -> int:
    """Return where a verb goes in a list of verbs (查看 before 新增 before 修改 ...)."""
    for n, (verb, words) in enumerate(VERB_LABELS.items()):
        if label_or_verb in (verb, *words):
            return n
    return len(VERB_LABELS)


def verb_label(verb: str, lang: str) -> str:
    """Return a verb (or a permission name such as can_read) as people read it in `lang`."""
    zh, en = VERB_LABELS.get(verb.removeprefix("can_"), (verb, verb))
    return en if lang == "en" else zh
