"""Enum parameters that accept an option's number, key or title (any case), for every algorithm.

QGIS accepts only numbers for an enum (or only the option strings when it stores strings);
``qgis_process help`` lists numbers while a model or script may use names. Before QGIS checks the
values, :func:`normalise` turns every spelling into the form the parameter stores.
"""

from qgis.core import QgsProperty


def enum_keys(definition):
    """Returns the stable keys of an enum parameter (its options when it declares none)."""
    keys = (definition.metadata().get("landfusion") or {}).get("keys")
    return [str(k) for k in keys] if keys else [str(o) for o in definition.options()]


def _match(definition, item):
    """Returns the stored form (index or static string) of one value, or None when unknown."""
    options = [str(o) for o in definition.options()]
    keys = enum_keys(definition)
    static = definition.usesStaticStrings()
    if isinstance(item, bool):
        return None
    if isinstance(item, (int, float)) and float(item).is_integer():
        index = int(item)
    else:
        text = str(item).strip()
        index = None
        if text.lstrip("-").isdigit():
            index = int(text)
        else:
            folded = text.casefold()
            for candidates in (keys, options):
                found = [i for i, c in enumerate(candidates) if c.casefold() == folded]
                if found:
                    index = found[0]
                    break
            if index is None:
                return None
    if not 0 <= index < len(options):
        return None
    return options[index] if static else index


def _items(definition, value):
    if isinstance(value, (list, tuple)):
        return list(value)
    if definition.allowMultiple() and isinstance(value, str):
        return [part for part in value.split(",") if part.strip()]
    return [value]


def normalise(algorithm, parameters):
    """Returns a copy of ``parameters`` with every enum value in the form QGIS expects."""
    result = dict(parameters)
    for definition in algorithm.parameterDefinitions():
        if definition.type() != "enum":
            continue
        value = result.get(definition.name())
        if value is None or value == "" or isinstance(value, QgsProperty):
            continue
        items = _items(definition, value)
        matched = [_match(definition, item) for item in items]
        if any(m is None for m in matched):
            continue  # left as given: unknown_choice() names it
        if definition.allowMultiple():
            result[definition.name()] = matched
        else:
            result[definition.name()] = matched[0]
    return result


def unknown_choice(algorithm, parameters):
    """Returns a message naming an enum value that is no option (None when all are known)."""
    for definition in algorithm.parameterDefinitions():
        if definition.type() != "enum":
            continue
        value = parameters.get(definition.name())
        if value is None or value == "" or isinstance(value, QgsProperty):
            continue
        for item in _items(definition, value):
            if _match(definition, item) is None:
                keys = enum_keys(definition)
                listed = "; ".join(f"{i} = {k}" for i, k in enumerate(keys))
                return (f"{definition.name()} ({definition.description()}): '{item}' is not an "
                        f"option. Give a number or a name: {listed}.")
    return None


def as_keys(algorithm, parameters, name, context):
    """Returns the chosen key (a list of keys for multiple enums) of enum parameter ``name``."""
    definition = algorithm.parameterDefinition(name)
    keys = enum_keys(definition)
    options = [str(o) for o in definition.options()]
    if definition.usesStaticStrings():
        if definition.allowMultiple():
            chosen = algorithm.parameterAsEnumStrings(parameters, name, context)
            return [keys[options.index(c)] for c in chosen if c in options]
        chosen = algorithm.parameterAsEnumString(parameters, name, context)
        return keys[options.index(chosen)] if chosen in options else None
    if definition.allowMultiple():
        return [keys[i] for i in algorithm.parameterAsEnums(parameters, name, context)]
    if parameters.get(name) in (None, "") and definition.defaultValue() is None:
        return None
    return keys[algorithm.parameterAsEnum(parameters, name, context)]
