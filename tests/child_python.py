"""Code for child Pythons of the tests (run with ``subprocess``): what they start with."""

#: The start of a child script that must run without ``lion_hf`` (as on a machine that never installed it): any
#: import of it fails, so a model loads only through the remote code saved beside its weights.
HIDE_LION_HF = '''
import importlib.abc, json, sys
class _Blocker(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "lion_hf":
            raise ModuleNotFoundError("lion_hf is hidden in this test")
        return None
sys.meta_path.insert(0, _Blocker())
'''
