"""docs/api.yaml against the implementation: every documented operation answers with a status
it documents (never 404/405 for want of a route), every route in engine/control/router.cpp is
documented, and the request examples are accepted."""

import os
import re
import unittest

import yaml

from smtpfault_server import SmtpfaultServer, send_message

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
METHODS = ("get", "put", "post", "delete", "patch")
ROUTE_RE = re.compile(r'\{verb::(get|put|post|delete_|patch), "([^"]+)"')


def load_spec():
    with open(os.path.join(ROOT, "docs", "api.yaml"), encoding="utf-8") as f:
        return yaml.safe_load(f)


def documented(spec):
    return {(m.upper(), path) for path, ops in spec["paths"].items() for m in ops if m in METHODS}


def router_routes():
    with open(os.path.join(ROOT, "engine", "control", "router.cpp"), encoding="utf-8") as f:
        return {(m.rstrip("_").upper(), p) for m, p in ROUTE_RE.findall(f.read())}


def resolve(spec, node):
    while isinstance(node, dict) and "$ref" in node:
        name = node["$ref"].split("/")
        node = spec
        for part in name[1:]:
            node = node[part]
    return node


class OpenApiTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.spec = load_spec()
        cls.server = SmtpfaultServer().start()

    @classmethod
    def tearDownClass(cls):
        try:
            cls.server.stop()
        finally:
            cls.server.cleanup()

    def test_spec_is_openapi_3(self):
        self.assertTrue(str(self.spec["openapi"]).startswith("3."))
        self.assertIn("bearer", self.spec["components"]["securitySchemes"])

    def test_every_route_is_documented_and_every_documented_path_is_routed(self):
        routes = router_routes()
        self.assertGreater(len(routes), 10, "the route table pattern in router.cpp changed?")
        docs = documented(self.spec)
        self.assertEqual(sorted(routes - docs), [], "routes missing from docs/api.yaml")
        self.assertEqual(sorted(docs - routes), [], "documented operations without a route")

    def test_every_documented_operation_answers(self):
        stored = send_message(self.server, b"Subject: openapi\r\n\r\nbody\r\n")
        session_id = stored.session["id"]
        self.server.wait_for_line(r" %s \*: session ended" % session_id)
        _, _, rule = self.server.api("POST", "/api/v1/faults", {
            "match": {"on": "NOOP"}, "action": {"reply": {"code": 250}}, "times": 0})
        ids = {"/api/v1/messages/{id}": stored.id, "/api/v1/messages/{id}/raw": stored.id,
               "/api/v1/sessions/{id}": session_id, "/api/v1/faults/{id}": rule["id"]}
        # Deletions last, so the ids above still exist when they are used.
        ops = sorted(documented(self.spec),
                     key=lambda mp: (mp[0] == "DELETE", "{" not in mp[1], mp[1]))
        for method, path in ops:
            op = self.spec["paths"][path][method.lower()]
            url = path.replace("{id}", ids.get(path, stored.id)).replace("{part}", "1")
            query = [(p["name"], p["example"]) for p in map(lambda p: resolve(self.spec, p),
                                                             op.get("parameters", []))
                     if p.get("in") == "query" and "example" in p]
            if query:
                url += "?" + "&".join("%s=%s" % kv for kv in query)
            body = None
            if "requestBody" in op:
                body = op["requestBody"]["content"]["application/json"]["example"]
            with self.subTest(method=method, path=path):
                status, _, reply = self.server.api(method, url, body)
                self.assertNotIn(status, (404, 405), reply)
                self.assertIn(str(status), {str(k) for k in op["responses"]},
                              "%s %s answered %d, which is not documented: %r"
                              % (method, url, status, reply))
                self.assertLess(status, 400, reply)


if __name__ == "__main__":
    unittest.main()
