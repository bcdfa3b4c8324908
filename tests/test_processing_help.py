"""Help compliance of every LandFusion algorithm, with the rules QGIS applies to its own."""

import os
import re


from landfusion.algorithms.provider import algorithm_classes, model_paths


def test_every_algorithm_is_registered(qgis_app):
    from qgis.core import QgsApplication

    provider = QgsApplication.processingRegistry().providerById("landfusion")
    assert provider is not None
    ids = {a.id() for a in provider.algorithms()}
    workflows = {f"landfusion:{os.path.splitext(os.path.basename(p))[0]}" for p in model_paths()}
    assert {f"landfusion:{cls().name()}" for cls in algorithm_classes()} | workflows == ids
    assert "landfusion:spectralindices" in ids


def test_help_strings(algorithms):
    for alg in algorithms:
        name = alg.name()
        assert re.fullmatch(r"[a-z0-9]+", name), name
        assert alg.displayName() and alg.group() and alg.groupId()
        short = alg.shortDescription()
        assert short, f"{name}: shortDescription missing"
        assert short.endswith("."), f"{name}: shortDescription must end with a period"
        assert "<" not in short and "\n" not in short, f"{name}: no HTML or line breaks"
        first_word = short.split()[0]
        assert first_word[0].isupper() and first_word.endswith("s"), (
            f"{name}: shortDescription must start with a verb in the third person: {short}")
        assert alg.shortHelpString().strip(), f"{name}: shortHelpString missing"
        assert alg.tags() and all(t.strip() for t in alg.tags()), f"{name}: tags missing"
        assert alg.helpUrl() is not None


def test_parameters_are_described(algorithms):
    for alg in algorithms:
        for param in alg.parameterDefinitions():
            assert re.fullmatch(r"[A-Z][A-Z0-9_]*", param.name()), (alg.name(), param.name())
            assert param.description(), (alg.name(), param.name())


def test_plugin_class_registers_and_removes_the_provider(qgis_app):
    """What QGIS does with the plugin: classFactory, initGui, unload."""
    from qgis.core import QgsApplication

    import landfusion

    registry = QgsApplication.processingRegistry()
    before = registry.providerById("landfusion")
    registry.removeProvider(before)  # the fixture's provider, restored below
    try:
        plugin = landfusion.classFactory(None)
        plugin.initGui()
        provider = registry.providerById("landfusion")
        assert provider is not None and len(provider.algorithms()) >= 8
        assert provider.warningMessage() == ""  # every dependency is installed here
        plugin.unload()
        assert registry.providerById("landfusion") is None
    finally:
        from landfusion.algorithms.provider import LandFusionProvider

        restored = LandFusionProvider()
        registry.addProvider(restored)
        qgis_app.landfusion_provider = restored  # keep a reference, or its algorithms vanish
