"""core_webservice_get_site_info."""

from __future__ import annotations

import hashlib
from typing import Any

from ..formatting import ABSENT
from ..params import DEFAULT, Multiple, Value, dflt
from .base import CORE_VERSION, Call, function_version, wsfunction


@wsfunction("core_webservice_get_site_info", {
    "serviceshortnames": dflt(Multiple(Value("alphanumext"), DEFAULT), []),
})
def get_site_info(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    admin = call.state.users[2]
    allowed = call.allowed_functions
    key = hashlib.md5(f"{call.config.token}-key".encode()).hexdigest()
    return {
        "sitename": call.state.courses[1].fullname,
        "username": admin.username,
        "firstname": admin.firstname,
        "lastname": admin.lastname,
        "fullname": f"{admin.firstname} {admin.lastname}",
        "lang": "en",
        "userid": admin.id,
        "siteurl": call.siteurl,
        "userpictureurl": call.picture("f1"),
        "functions": [{"name": n, "version": function_version(n)} for n in allowed],
        "downloadfiles": 0,
        "uploadfiles": 0,
        "release": "4.5.5+ (Build: 20250613)",
        "version": CORE_VERSION,
        "mobilecssurl": "",
        "advancedfeatures": [
            {"name": name, "value": value}
            for name, value in [
                ("usecomments", 1), ("usetags", 1), ("enablenotes", 1), ("messaging", 1),
                ("enableblogs", 1), ("enablecompletion", 1), ("enablebadges", 1),
                ("messagingallusers", 0), ("enablecustomreports", 1),
                ("enableglobalsearch", 0), ("mnet_dispatcher_mode", 0),
                ("enablecompetencies", 1),
            ]
        ],
        "usercanmanageownfiles": True,
        "userquota": 0,
        "usermaxuploadfilesize": -1,
        "userhomepage": 1,
        "userhomepageurl": ABSENT,
        "userprivateaccesskey": key,
        "siteid": 1,
        "sitecalendartype": "gregorian",
        "usercalendartype": "gregorian",
        "userissiteadmin": True,
        "theme": "boost",
        "limitconcurrentlogins": 0,
        "usersessionscount": ABSENT,  # only with limitconcurrentlogins
        "policyagreed": 0,
    }
