using System.Reflection;
using Microsoft.ML;
using MLNetTransformerExtensions.MLNet;
using MLNetTransformerExtensions.MLNet.Internal;

namespace MLNetTransformerExtensions.Tests.MLNet.Internal;

/// <summary>
/// The library compiles against publicized ML.NET assemblies, so the compiler cannot stop code from using
/// ML.NET internals anywhere. This scan of the compiled IL keeps every such use in MLNet/Internal.
/// </summary>
[TestClass]
public sealed class MLNetInternalsTests
{
    private const string InternalNamespace = "MLNetTransformerExtensions.MLNet.Internal";
    private static readonly string[] s_publicizedAssemblies = ["Microsoft.ML.Core", "Microsoft.ML.Data"];

    [TestMethod]
    public void OnlyTheInternalFolderUsesNonPublicMLNetMembers()
    {
        var uses = NonPublicMLNetUses(typeof(TextClassificationTransformer).Assembly);

        var outside = uses.Where(u => u.Namespace != InternalNamespace).Select(u => $"{u.User} uses {u.Member}").Distinct().ToList();
        Assert.IsEmpty(outside, "ML.NET internals used outside MLNet/Internal:\n" + string.Join("\n", outside));
        // The scan itself works: it sees the internals the persistence code must use.
        CollectionAssert.IsSubsetOf(
            new[] { "ModelSaveContext.SaveBinaryStream", "ModelLoadContext.TryLoadBinaryStream", "CatalogUtils.GetEnvironment" },
            uses.Select(u => u.Member).ToList());
    }

    [TestMethod]
    public void TheOnlyNonPublicMLNetAttributeIsTheLoadableClassRegistration()
    {
        var attributes = typeof(TextClassificationTransformer).Assembly.GetCustomAttributesData()
            .Select(a => a.AttributeType)
            .Where(t => s_publicizedAssemblies.Contains(t.Assembly.GetName().Name) && !t.IsVisible)
            .Select(t => t.Name)
            .ToList();
        // One registration per persisted component (the classifier, the sentence-embedding transform), nothing else.
        Assert.IsGreaterThanOrEqualTo(2, attributes.Count);
        CollectionAssert.AreEqual(new[] { "LoadableClassAttribute" }, attributes.Distinct().ToList());
    }

    [TestMethod]
    public void ClassifierFoldersRoundTripWithSubfolders()
    {
        var source = TestPaths.NewTempDirectory();
        var target = TestPaths.NewTempDirectory();
        try
        {
            File.WriteAllText(Path.Combine(source, "config.json"), "{\"a\": 1}");
            Directory.CreateDirectory(Path.Combine(source, "sub", "deeper"));
            var weights = Enumerable.Range(0, 200_000).Select(i => (byte)(i * 7)).ToArray();
            File.WriteAllBytes(Path.Combine(source, "sub", "deeper", "model.safetensors"), weights);
            File.WriteAllBytes(Path.Combine(source, "empty.bin"), []);

            using var stream = new MemoryStream();
            using (var writer = new BinaryWriter(stream, System.Text.Encoding.UTF8, leaveOpen: true))
            {
                TextClassificationPersistence.WriteFolder(writer, source);
            }

            stream.Position = 0;
            using (var reader = new BinaryReader(stream))
            {
                TextClassificationPersistence.ReadFolder(reader, target);
            }

            Assert.AreEqual("{\"a\": 1}", File.ReadAllText(Path.Combine(target, "config.json")));
            CollectionAssert.AreEqual(weights, File.ReadAllBytes(Path.Combine(target, "sub", "deeper", "model.safetensors")));
            Assert.AreEqual(0, new FileInfo(Path.Combine(target, "empty.bin")).Length);
        }
        finally
        {
            Directory.Delete(source, recursive: true);
            Directory.Delete(target, recursive: true);
        }
    }

    [TestMethod]
    [DataRow("../outside.txt")]
    [DataRow("sub/../../outside.txt")]
    [DataRow("/etc/outside.txt")]
    public void AClassifierFolderCannotWriteOutsideItself(string path)
    {
        using var stream = new MemoryStream();
        using (var writer = new BinaryWriter(stream, System.Text.Encoding.UTF8, leaveOpen: true))
        {
            writer.Write(1); // format version
            writer.Write(1); // one file
            writer.Write(path);
            writer.Write(3L);
            writer.Write("abc"u8.ToArray());
        }

        stream.Position = 0;
        var target = TestPaths.NewTempDirectory();
        try
        {
            using var reader = new BinaryReader(stream);
            var error = Assert.ThrowsExactly<FormatException>(() => TextClassificationPersistence.ReadFolder(reader, target));
            StringAssert.Contains(error.Message, "is not inside the classifier's folder");
        }
        finally
        {
            Directory.Delete(target, recursive: true);
        }
    }

    [TestMethod]
    public void ATruncatedClassifierFolderIsReported()
    {
        using var stream = new MemoryStream();
        using (var writer = new BinaryWriter(stream, System.Text.Encoding.UTF8, leaveOpen: true))
        {
            writer.Write(1);
            writer.Write(1);
            writer.Write("model.bin");
            writer.Write(100L);
            writer.Write(new byte[10]);
        }

        stream.Position = 0;
        var target = TestPaths.NewTempDirectory();
        try
        {
            using var reader = new BinaryReader(stream);
            var error = Assert.ThrowsExactly<FormatException>(() => TextClassificationPersistence.ReadFolder(reader, target));
            StringAssert.Contains(error.Message, "'model.bin' is cut short");
        }
        finally
        {
            Directory.Delete(target, recursive: true);
        }
    }

    [TestMethod]
    public void AnUnknownKindSaysWhichAssemblyShouldDeclareIt()
    {
        var error = Assert.ThrowsExactly<InvalidOperationException>(() => TextClassificationModelFormats.CreateLoader("encoder-head-v9", "Some.Missing.Assembly"));
        StringAssert.Contains(error.Message, "'encoder-head-v9'");
        StringAssert.Contains(error.Message, "'Some.Missing.Assembly'");
        Assert.IsInstanceOfType<FakeNaiveBayesLoader>(TextClassificationModelFormats.CreateLoader(FakeNaiveBayesClassifier.Kind, typeof(FakeNaiveBayesLoader).Assembly.GetName().Name!));
    }

    /// <summary>Every use, in the IL of <paramref name="assembly"/>, of a type or member that Microsoft.ML.Core/Data do not make public.</summary>
    private static List<(string Namespace, string User, string Member)> NonPublicMLNetUses(Assembly assembly)
    {
        var uses = new List<(string, string, string)>();
        foreach (var type in assembly.GetTypes())
        {
            var owner = type;
            while (owner.DeclaringType is not null)
            {
                owner = owner.DeclaringType;
            }

            var members = type.GetMethods(BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Instance | BindingFlags.Static | BindingFlags.DeclaredOnly)
                .Cast<MethodBase>()
                .Concat(type.GetConstructors(BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Instance | BindingFlags.Static | BindingFlags.DeclaredOnly));
            foreach (var method in members)
            {
                foreach (var used in ILReferences.ReferencedMembers(method))
                {
                    if (IsNonPublicMLNet(used))
                    {
                        var name = used is Type t ? t.Name : $"{used.DeclaringType?.Name}.{used.Name}";
                        uses.Add((owner.Namespace ?? "", $"{type.FullName}.{method.Name}", name));
                    }
                }
            }

            foreach (var signatureType in ILReferences.SignatureTypes(type))
            {
                if (IsNonPublicMLNet(signatureType))
                {
                    uses.Add((owner.Namespace ?? "", type.FullName!, signatureType.Name));
                }
            }
        }

        return uses;
    }

    private static bool IsNonPublicMLNet(MemberInfo member)
    {
        var type = member as Type ?? member.DeclaringType;
        if (type is null || !s_publicizedAssemblies.Contains(type.Assembly.GetName().Name))
        {
            return false;
        }

        if (type.IsGenericType && type.GetGenericArguments().Any(IsNonPublicMLNet))
        {
            return true;
        }

        return !type.IsVisible || member switch
        {
            MethodBase method => !method.IsPublic,
            FieldInfo field => !field.IsPublic,
            _ => false,
        };
    }
}
