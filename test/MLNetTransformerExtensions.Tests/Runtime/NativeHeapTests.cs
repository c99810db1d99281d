using System.Runtime.InteropServices;
using MLNetTransformerExtensions.Runtime;
using static TorchSharp.torch;

namespace MLNetTransformerExtensions.Tests.Runtime;

[TestClass]
public sealed class NativeHeapTests
{
    [ClassInitialize]
    public static void Initialize(TestContext _) => TorchRuntime.EnsureInitialized();

    [TestMethod]
    public void TheThresholdIsThreeQuartersOfTheLargestParameterWithinGlibcsLimits()
    {
        RequireGlibc();
        using var mid = nn.Sequential(nn.Linear(1024, 2048), nn.Linear(2048, 16));   // 8 MiB weight
        Assert.AreEqual(6L << 20, NativeHeap.PrepareForTraining(mid));

        using var tiny = nn.Linear(16, 16);
        Assert.AreEqual(128L << 10, NativeHeap.PrepareForTraining(tiny), "never below glibc's default");

        using var large = nn.Embedding(72_000, 256);                                     // 70.3 MiB
        Assert.AreEqual(32L << 20, NativeHeap.PrepareForTraining(large), "never above what glibc accepts");
    }

    [TestMethod]
    public void BlocksAtTheThresholdGetTheirOwnMappingAndSmallerOnesDoNot()
    {
        RequireGlibc();
        using var model = nn.Linear(1024, 2048);
        var threshold = NativeHeap.PrepareForTraining(model)!.Value;

        // glibc serves a request from free heap memory when it holds a large enough piece and maps only memory it must
        // get anew, so the large block asks for more than all heaps hold free. Each block is asked whether it has its own
        // mapping; the process's count of mappings would also move with other threads (the finalizer freeing tensors).
        NativeHeap.Trim();
        var large = Math.Max(threshold, (long)MallInfo2().fordblks) + threshold;
        Assert.IsTrue(HasOwnMapping(large), "a block over the threshold that needs new memory is mapped on its own");
        Assert.IsFalse(HasOwnMapping(threshold / 2), "a block under the threshold comes from the heap");
    }

    [TestMethod]
    public void AThresholdTheUserSetIsLeftAlone()
    {
        RequireGlibc();
        using var model = nn.Linear(64, 64);
        var saved = Environment.GetEnvironmentVariable("MALLOC_MMAP_THRESHOLD_");
        Environment.SetEnvironmentVariable("MALLOC_MMAP_THRESHOLD_", "65536");
        try
        {
            Assert.IsNull(NativeHeap.PrepareForTraining(model));
        }
        finally
        {
            Environment.SetEnvironmentVariable("MALLOC_MMAP_THRESHOLD_", saved);
        }
    }

    private static void RequireGlibc()
    {
        if (!OperatingSystem.IsLinux() || !NativeLibrary.TryLoad("libc.so.6", out var libc) || !NativeLibrary.TryGetExport(libc, "mallinfo2", out _))
        {
            Assert.Inconclusive("glibc's allocator is only tuned on Linux with glibc 2.33 or later.");
        }
    }

    /// <summary>Allocates <paramref name="bytes"/> with <c>malloc</c> and reads glibc's flag in the block's header.</summary>
    private static bool HasOwnMapping(long bytes)
    {
        const long IsMmapped = 0x2; // glibc's IS_MMAPPED bit in the size word before the block
        var block = Marshal.AllocHGlobal((nint)bytes);
        try
        {
            return (Marshal.ReadInt64(block, -sizeof(long)) & IsMmapped) != 0;
        }
        finally
        {
            Marshal.FreeHGlobal(block);
        }
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct MallocInfo
    {
#pragma warning disable CS0649 // filled by glibc
        public nuint arena, ordblks, smblks, hblks, hblkhd, usmblks, fsmblks, uordblks, fordblks, keepcost;
#pragma warning restore CS0649
    }

    [DllImport("libc.so.6", EntryPoint = "mallinfo2")]
    private static extern MallocInfo MallInfo2();
}
