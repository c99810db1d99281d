using System.Reflection;
using MLNetTransformerExtensions.MLNet;

namespace MLNetTransformerExtensions.Tests.Architecture;

/// <summary>
/// The library's folders are layers and its arrows run one way (docs/architecture.md): a namespace may use its own
/// layer and the layers below it, never one above, and never a sibling of the same rank. Read from the compiled IL,
/// so a fully qualified name or a <c>using static</c> cannot slip past it.
/// </summary>
[TestClass]
public sealed class LayeringTests
{
    private const string Root = "MLNetTransformerExtensions";

    // Rank, then the namespaces of one layer. Layers of the same rank (Tokenization and Modeling; Hub and Builtin)
    // do not know each other.
    private static readonly (int Rank, string Layer, string[] Namespaces)[] s_layers =
    [
        (0, "Diagnostics", ["Diagnostics"]),
        (1, "Runtime", ["Runtime"]),
        (2, "Checkpoints", ["Checkpoints"]),
        (3, "Tokenization", ["Tokenization"]),
        (3, "Modeling", ["Modeling"]),
        (4, "Vocabulary training", ["Tokenization.Vocabulary"]),
        (4, "Hub", ["Hub"]),
        (4, "Built-in models", ["Builtin"]),
        (5, "Model sources", ["Sources"]),
        (6, "Training", ["Training"]),
        (7, "Pretraining", ["Training.Pretraining"]),
        (8, "ML.NET", ["MLNet", "MLNet.Internal"]),
        (9, "Experiments", ["Experiments"]),
        (9, "Export", ["Export"]),
    ];

    [TestMethod]
    public void NoNamespaceReferencesALayerAboveItOrBesideIt()
    {
        var assembly = typeof(TextClassificationTransformer).Assembly;
        var violations = new SortedSet<string>(StringComparer.Ordinal);
        var edges = new HashSet<(string From, string To)>();
        foreach (var type in assembly.GetTypes())
        {
            var from = LayerOf(Outermost(type));
            if (from is null)
            {
                continue;
            }

            foreach (var used in ReferencedTypes(type, assembly))
            {
                var to = LayerOf(Outermost(used));
                if (to is null || to.Value.Layer == from.Value.Layer)
                {
                    continue;
                }

                edges.Add((from.Value.Layer, to.Value.Layer));
                if (to.Value.Rank >= from.Value.Rank)
                {
                    violations.Add($"{from.Value.Layer} ({Outermost(type).FullName}) uses {to.Value.Layer} ({Outermost(used).FullName})");
                }
            }
        }

        Assert.IsEmpty(violations, "references that run up or sideways:\n" + string.Join("\n", violations));
        // The scan sees real arrows: the ML.NET layer trains through Training, and models load through Checkpoints.
        CollectionAssert.IsSubsetOf(new[] { ("ML.NET", "Training"), ("Modeling", "Checkpoints"), ("Model sources", "Hub") }, edges.ToList());
    }

    [TestMethod]
    public void EveryNamespaceOfTheLibraryHasALayer()
    {
        var unplaced = typeof(TextClassificationTransformer).Assembly.GetTypes()
            .Select(t => Outermost(t).Namespace)
            .Where(n => n is not null && n.StartsWith(Root, StringComparison.Ordinal) && LayerOf(n) is null)
            .Distinct()
            .ToList();
        Assert.IsEmpty(unplaced, "namespaces without a layer in this test (and in docs/architecture.md): " + string.Join(", ", unplaced));
    }

    [TestMethod]
    public void AnUpwardReferenceIsCaught()
    {
        // The check itself: Training's classifiers are used by the ML.NET layer, so ML.NET sits above Training.
        Assert.IsTrue(LayerOf("MLNetTransformerExtensions.MLNet")!.Value.Rank > LayerOf("MLNetTransformerExtensions.Training")!.Value.Rank);
        Assert.IsNull(LayerOf("System.Linq"));
    }

    private static (int Rank, string Layer)? LayerOf(Type type) => LayerOf(type.Namespace);

    private static (int Rank, string Layer)? LayerOf(string? ns)
    {
        if (ns is null || !ns.StartsWith(Root + ".", StringComparison.Ordinal))
        {
            return null;
        }

        var relative = ns[(Root.Length + 1)..];
        foreach (var (rank, layer, namespaces) in s_layers)
        {
            if (namespaces.Contains(relative))
            {
                return (rank, layer);
            }
        }

        return null;
    }

    private static Type Outermost(Type type)
    {
        while (type.DeclaringType is not null)
        {
            type = type.DeclaringType;
        }

        return type;
    }

    /// <summary>The library's own types a type refers to: in its signatures, its members' signatures and its IL, generic arguments included.</summary>
    private static IEnumerable<Type> ReferencedTypes(Type type, Assembly assembly)
    {
        const BindingFlags all = BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Instance | BindingFlags.Static | BindingFlags.DeclaredOnly;
        var direct = new List<Type>(ILReferences.SignatureTypes(type));
        direct.AddRange(type.GetProperties(all).Select(p => p.PropertyType));
        var methods = type.GetMethods(all).Cast<MethodBase>().Concat(type.GetConstructors(all));
        foreach (var method in methods)
        {
            foreach (var member in ILReferences.ReferencedMembers(method))
            {
                if (member is Type t)
                {
                    direct.Add(t);
                }
                else if (member.DeclaringType is not null)
                {
                    direct.Add(member.DeclaringType);
                    if (member is MethodInfo { IsGenericMethod: true } generic)
                    {
                        direct.AddRange(generic.GetGenericArguments());
                    }

                    if (member is FieldInfo field)
                    {
                        direct.Add(field.FieldType);
                    }
                }
            }
        }

        return direct.SelectMany(Expand).Where(t => t.Assembly == assembly);
    }

    private static IEnumerable<Type> Expand(Type type)
    {
        if (type.HasElementType)
        {
            foreach (var element in Expand(type.GetElementType()!))
            {
                yield return element;
            }

            yield break;
        }

        if (type.IsGenericParameter)
        {
            yield break;
        }

        yield return type;
        if (type.IsGenericType)
        {
            foreach (var argument in type.GetGenericArguments().SelectMany(Expand))
            {
                yield return argument;
            }
        }
    }
}
