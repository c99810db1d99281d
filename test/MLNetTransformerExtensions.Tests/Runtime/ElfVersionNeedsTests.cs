using MLNetTransformerExtensions.Runtime;

namespace MLNetTransformerExtensions.Tests.Runtime;

[TestClass]
public sealed class ElfVersionNeedsTests
{
    private static string GlueLibrary()
    {
        var candidates = new[]
        {
            Path.Combine(AppContext.BaseDirectory, "libLibTorchSharp.so"),
            Path.Combine(AppContext.BaseDirectory, "runtimes", "linux-x64", "native", "libLibTorchSharp.so"),
        };
        var found = candidates.FirstOrDefault(File.Exists);
        if (found is null)
        {
            Assert.Inconclusive("TorchSharp's Linux glue library is only in Linux build outputs.");
        }

        return found!;
    }

    [TestMethod]
    public void WeakenChangesExactlyTheOneFlagAndIsIdempotent()
    {
        var original = File.ReadAllBytes(GlueLibrary());
        var before = ElfVersionNeeds.Read(original, "glue");
        var need = before.Single(r => r.Version == "GLIBCXX_3.4.32");
        Assert.AreEqual("libstdc++.so.6", need.Library);
        Assert.IsFalse(need.IsWeak);

        var copy = (byte[])original.Clone();
        Assert.AreEqual(ElfWeakenResult.Weakened, ElfVersionNeeds.Weaken(copy, "GLIBCXX_3.4.32", "copy"));
        Assert.AreEqual(original.Length, copy.Length);
        var changed = Enumerable.Range(0, copy.Length).Where(i => copy[i] != original[i]).ToList();
        Assert.AreEqual(1, changed.Count, "only the vna_flags byte may change");
        Assert.AreEqual(original[changed[0]] | 0x2, copy[changed[0]]);

        var after = ElfVersionNeeds.Read(copy, "copy");
        Assert.AreEqual(before.Count, after.Count);
        for (var i = 0; i < before.Count; i++)
        {
            var expectWeak = before[i].IsWeak || before[i].Version == "GLIBCXX_3.4.32";
            Assert.AreEqual(before[i] with { IsWeak = expectWeak }, after[i]);
        }

        var again = (byte[])copy.Clone();
        Assert.AreEqual(ElfWeakenResult.AlreadyWeak, ElfVersionNeeds.Weaken(again, "GLIBCXX_3.4.32", "copy"));
        CollectionAssert.AreEqual(copy, again, "a second run must be a no-op");
    }

    [TestMethod]
    public void FileWithoutTheRequirementIsLeftAlone()
    {
        var original = File.ReadAllBytes(GlueLibrary());
        var copy = (byte[])original.Clone();
        Assert.AreEqual(ElfWeakenResult.NotRequired, ElfVersionNeeds.Weaken(copy, "GLIBCXX_9.9.99", "copy"));
        CollectionAssert.AreEqual(original, copy);
    }

    [TestMethod]
    public void TruncatedFileGivesAClearError()
    {
        var original = File.ReadAllBytes(GlueLibrary());
        var truncated = original.AsSpan(0, 4096).ToArray();
        var error = Assert.ThrowsExactly<InvalidDataException>(() => ElfVersionNeeds.Weaken(truncated, "GLIBCXX_3.4.32", "cut.so"));
        StringAssert.Contains(error.Message, "cut.so");
        StringAssert.Contains(error.Message, "truncated");
    }

    [TestMethod]
    public void NonElfFileGivesAClearError()
    {
        var text = "this is not a shared library, just some text that is long enough to have a header......"u8.ToArray();
        var error = Assert.ThrowsExactly<InvalidDataException>(() => ElfVersionNeeds.Read(text, "notes.txt"));
        StringAssert.Contains(error.Message, "notes.txt");
        StringAssert.Contains(error.Message, "not an ELF file");
    }
}
