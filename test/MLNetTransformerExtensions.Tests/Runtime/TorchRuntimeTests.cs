using MLNetTransformerExtensions.Runtime;
using TorchSharp;

namespace MLNetTransformerExtensions.Tests.Runtime;

[TestClass]
public sealed class TorchRuntimeTests
{
    [TestMethod]
    public void TorchInitialisesAndASmallModelRunsForwardAndBackward()
    {
        var status = TorchRuntime.EnsureInitialized();
        Assert.AreEqual("0.107.0", status.TorchSharpVersion);
        StringAssert.StartsWith(status.LibTorchVersion, "2.10");
        if (OperatingSystem.IsLinux())
        {
            Assert.AreNotEqual(NativeCompatibilityFix.NotApplicable, status.Fix);
            Assert.IsTrue(File.Exists(status.LoadedLibrary));
        }

        var check = RuntimeCheck.Run();
        Assert.IsTrue(float.IsFinite(check.Loss) && check.Loss > 0);
        Assert.IsTrue(check.GradientNorm > 0);
        Assert.AreEqual(check, RuntimeCheck.Run(), "the check is seeded, so it repeats exactly");
    }

    [TestMethod]
    public void RepeatedInitialisationReturnsTheSameStatus()
    {
        Assert.AreSame(TorchRuntime.EnsureInitialized(), TorchRuntime.EnsureInitialized());
        using var t = torch.ones(3);
        Assert.AreEqual(3f, t.sum().item<float>());
    }
}
